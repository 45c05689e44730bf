-- The kill-switch latch (one row) and its append-only history (who, when, why).
-- depends: 0003_trading

CREATE TABLE kill_switch (
    singleton  boolean     PRIMARY KEY DEFAULT true CHECK (singleton),
    latched    boolean     NOT NULL DEFAULT false,
    reason     text,
    changed_at timestamptz,
    changed_by text,
    CHECK (NOT latched OR (reason IS NOT NULL AND changed_at IS NOT NULL AND changed_by IS NOT NULL))
);
INSERT INTO kill_switch DEFAULT VALUES;

CREATE TABLE kill_switch_history (
    seq         bigint      GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    action      text        NOT NULL CHECK (action IN ('latch', 'release')),
    reason      text,
    changed_at  timestamptz NOT NULL,
    changed_by  text        NOT NULL,
    recorded_at timestamptz NOT NULL DEFAULT now()
);
CREATE TRIGGER kill_switch_history_append_only BEFORE UPDATE OR DELETE ON kill_switch_history
    FOR EACH ROW EXECUTE FUNCTION reject_audit_change();
CREATE TRIGGER kill_switch_history_no_truncate BEFORE TRUNCATE ON kill_switch_history
    FOR EACH STATEMENT EXECUTE FUNCTION reject_audit_change();
