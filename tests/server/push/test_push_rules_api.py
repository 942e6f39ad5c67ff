"""Push rules API: defaults, create/replace with before/after, enabled/actions, errors, account-data copy."""

from __future__ import annotations

from tests.server.accounts.helpers import V3
from tests.server.push.helpers import sync, user

PR = V3 + "/pushrules"
EXPECTED_OVERRIDE = [".m.rule.master", ".m.rule.suppress_notices", ".m.rule.invite_for_me", ".m.rule.member_event",
                     ".m.rule.is_user_mention", ".m.rule.contains_display_name", ".m.rule.is_room_mention", ".m.rule.roomnotif",
                     ".m.rule.tombstone", ".m.rule.reaction", ".m.rule.room.server_acl", ".m.rule.suppress_edits"]
EXPECTED_UNDERRIDE = [".m.rule.call", ".m.rule.encrypted_room_one_to_one", ".m.rule.room_one_to_one", ".m.rule.message",
                      ".m.rule.encrypted"]


def ids(rules):
    return [r["rule_id"] for r in rules]


def test_defaults_and_account_data_copy(server):
    uid, tok = user(server, "alice")
    r = server.get(PR + "/", token=tok)
    assert r.status_code == 200, r.text
    g = r.json()["global"]
    assert ids(g["override"]) == EXPECTED_OVERRIDE
    assert ids(g["underride"]) == EXPECTED_UNDERRIDE
    assert ids(g["content"]) == [".m.rule.contains_user_name"] and g["content"][0]["pattern"] == "alice"
    assert g["room"] == [] and g["sender"] == []
    invite = g["override"][2]
    assert {"key": "state_key", "kind": "event_match", "pattern": uid} in invite["conditions"]
    assert g["override"][0]["enabled"] is False and all(r["default"] for r in g["override"])
    assert server.get(PR + "/global/", token=tok).json() == g
    # /sync carries the same rules as m.push_rules account data
    s = sync(server, tok)
    pr = [e for e in s["account_data"]["events"] if e["type"] == "m.push_rules"]
    assert pr and pr[0]["content"]["global"] == g


def test_create_order_update_delete(server):
    _uid, tok = user(server, "alice")
    body = {"actions": ["notify"], "pattern": "cake"}
    assert server.put(PR + "/global/content/a", token=tok, json=body).status_code == 200
    assert server.put(PR + "/global/content/b", token=tok, json=body).status_code == 200  # new: most important
    assert server.put(PR + "/global/content/c", token=tok, json=body, params={"after": "b"}).status_code == 200
    assert server.put(PR + "/global/content/d", token=tok, json=body, params={"before": "a"}).status_code == 200
    got = ids(server.get(PR + "/global/", token=tok).json()["content"])
    assert got == ["b", "c", "d", "a", ".m.rule.contains_user_name"]
    rule = server.get(PR + "/global/content/a", token=tok).json()
    assert rule == {"rule_id": "a", "enabled": True, "actions": ["notify"], "pattern": "cake", "default": False}
    # disable, then update: keeps place and enabled state
    assert server.put(PR + "/global/content/a/enabled", token=tok, json={"enabled": False}).status_code == 200
    assert server.put(PR + "/global/content/a", token=tok, json={"actions": [], "pattern": "pie"}).status_code == 200
    assert server.get(PR + "/global/content/a/enabled", token=tok).json() == {"enabled": False}
    assert server.get(PR + "/global/content/a", token=tok).json()["pattern"] == "pie"
    assert server.put(PR + "/global/content/a/actions", token=tok, json={"actions": ["notify", {"set_tweak": "sound", "value": "x"}]}).status_code == 200
    assert server.get(PR + "/global/content/a/actions", token=tok).json() == {"actions": ["notify", {"set_tweak": "sound", "value": "x"}]}
    # historical actions are stripped
    assert server.put(PR + "/global/override/o", token=tok, json={"actions": ["dont_notify"], "conditions": []}).status_code == 200
    assert server.get(PR + "/global/override/o/actions", token=tok).json() == {"actions": []}
    got = ids(server.get(PR + "/global/", token=tok).json()["override"])
    assert got[:2] == [".m.rule.master", "o"]
    assert server.delete(PR + "/global/content/a", token=tok).status_code == 200
    assert server.get(PR + "/global/content/a", token=tok).json()["errcode"] == "M_NOT_FOUND"
    # room and sender rules
    assert server.put(PR + "/global/room/!r:test.local", token=tok, json={"actions": []}).status_code == 200
    assert server.put(PR + "/global/sender/@spam:test.local", token=tok, json={"actions": []}).status_code == 200
    g = server.get(PR + "/", token=tok).json()["global"]
    assert ids(g["room"]) == ["!r:test.local"] and ids(g["sender"]) == ["@spam:test.local"]
    # account data follows
    s = sync(server, tok)
    pr = [e for e in s["account_data"]["events"] if e["type"] == "m.push_rules"]
    assert pr[0]["content"]["global"] == g


def test_server_default_rules(server):
    _uid, tok = user(server, "alice")
    assert server.put(PR + "/global/override/.m.rule.master/enabled", token=tok, json={"enabled": True}).status_code == 200
    assert server.get(PR + "/global/override/.m.rule.master", token=tok).json()["enabled"] is True
    assert server.put(PR + "/global/underride/.m.rule.message/actions", token=tok, json={"actions": []}).status_code == 200
    assert server.get(PR + "/global/underride/.m.rule.message/actions", token=tok).json() == {"actions": []}
    r = server.delete(PR + "/global/underride/.m.rule.message", token=tok)
    assert r.status_code == 400 and r.json()["errcode"] == "M_INVALID_PARAM"
    r = server.put(PR + "/global/underride/.m.rule.message", token=tok, json={"actions": []})
    assert r.status_code == 400 and r.json()["errcode"] == "M_INVALID_PARAM"


def test_errors(server):
    _uid, tok = user(server, "alice")

    def err(r, status, code):
        assert r.status_code == status, r.text
        assert r.json()["errcode"] == code, r.text

    err(server.get(PR + "/global/override/nope", token=tok), 404, "M_NOT_FOUND")
    err(server.delete(PR + "/global/override/nope", token=tok), 404, "M_NOT_FOUND")
    err(server.put(PR + "/global/override/nope/enabled", token=tok, json={"enabled": True}), 404, "M_NOT_FOUND")
    err(server.get(PR + "/global/override/nope/actions", token=tok), 404, "M_NOT_FOUND")
    err(server.get(PR + "/global/weird/x", token=tok), 400, "M_INVALID_PARAM")
    err(server.get(PR + "/device/override/x", token=tok), 400, "M_INVALID_PARAM")
    err(server.put(PR + "/global/content/x", token=tok, json={"actions": ["notify"]}), 400, "M_MISSING_PARAM")  # no pattern
    err(server.put(PR + "/global/override/x", token=tok, json={"conditions": []}), 400, "M_MISSING_PARAM")  # no actions
    err(server.put(PR + "/global/override/x", token=tok, json={"actions": "notify"}), 400, "M_BAD_JSON")
    err(server.put(PR + "/global/override/x", token=tok, json={"actions": ["explode"]}), 400, "M_INVALID_PARAM")
    err(server.put(PR + "/global/override/x", token=tok, json={"actions": [], "conditions": [{"kind": "event_match"}]}), 400, "M_BAD_JSON")
    err(server.put(PR + "/global/override/x", token=tok, json={"actions": [], "conditions": {}}), 400, "M_BAD_JSON")
    err(server.put(PR + "/global/override/.mine", token=tok, json={"actions": []}), 400, "M_INVALID_PARAM")
    err(server.put(PR + "/global/override/a%5Cb", token=tok, json={"actions": []}), 400, "M_INVALID_PARAM")
    err(server.put(PR + "/global/room/notaroom", token=tok, json={"actions": []}), 400, "M_INVALID_PARAM")
    err(server.put(PR + "/global/sender/nobody", token=tok, json={"actions": []}), 400, "M_INVALID_PARAM")
    err(server.put(PR + "/global/override/x", token=tok, json={"actions": []}, params={"before": "missing"}), 404, "M_NOT_FOUND")
    err(server.put(PR + "/global/override/x", token=tok, json={"actions": []}, params={"after": ".m.rule.master"}), 400, "M_INVALID_PARAM")
    err(server.put(PR + "/global/override/.m.rule.master/enabled", token=tok, json={"enabled": "yes"}), 400, "M_BAD_JSON")
    err(server.put(PR + "/global/override/.m.rule.master/actions", token=tok, json={}), 400, "M_MISSING_PARAM")
    err(server.put(PR + "/global/override/.m.rule.master/bogus", token=tok, json={}), 400, "M_UNRECOGNIZED")
    err(server.put(PR + "/global/override/x", token=tok, data=b"{not json"), 400, "M_NOT_JSON")
    err(server.get(PR + "/"), 401, "M_MISSING_TOKEN")
    # unknown condition kinds are accepted (they never match)
    assert server.put(PR + "/global/override/future", token=tok, json={"actions": ["notify"], "conditions": [{"kind": "org.future"}]}).status_code == 200
