-- Contacts (docs/contacts.md): a per-user list of Matrix IDs with an optional nickname and
-- labels ("lists", e.g. close_friends). "Mutual" is computed: both users list each other.
CREATE TABLE contacts (
    user_id TEXT NOT NULL,
    contact_id TEXT NOT NULL,
    nickname TEXT,
    added_ts BIGINT NOT NULL,
    PRIMARY KEY (user_id, contact_id)
);
CREATE INDEX contacts_by_contact ON contacts (contact_id, user_id);

CREATE TABLE contact_labels (
    user_id TEXT NOT NULL,
    label TEXT NOT NULL,
    contact_id TEXT NOT NULL,
    PRIMARY KEY (user_id, label, contact_id)
);
CREATE INDEX contact_labels_by_contact ON contact_labels (user_id, contact_id);

-- Who may invite a user or start a direct chat with them: 'anyone' (default) or 'contacts'.
CREATE TABLE contact_policies (
    user_id TEXT PRIMARY KEY,
    invites TEXT NOT NULL DEFAULT 'anyone',
    direct_messages TEXT NOT NULL DEFAULT 'anyone'
);
