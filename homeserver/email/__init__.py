"""Email: SMTP sending (``sender``), safe message building (``message``) and templates (``templates``)."""
