-- Alert rules (thresholds on the book's risk metrics), set through the API: desk state, so recorded
-- here and not in Redis. One rule per (portfolio, name), created once; ``rule_id`` is the key the API
-- shows. Also an index to page through one strategy's signals, newest first.
-- depends: 0006_order_activity

CREATE TABLE alert_rules (
    portfolio         text             NOT NULL,
    name              text             NOT NULL CHECK (name ~ '^[A-Za-z0-9_.-]{1,64}$'),
    rule_id           text             GENERATED ALWAYS AS (portfolio || ':' || name) STORED UNIQUE,
    metric            text             NOT NULL
                      CHECK (metric IN ('var', 'cvar', 'gross_exposure', 'net_exposure', 'drawdown')),
    threshold         double precision NOT NULL CHECK (threshold >= 0 AND threshold <= 1e12),
    severity          text             NOT NULL CHECK (severity IN ('warning', 'critical')),
    latch_kill_switch boolean          NOT NULL,
    created_at        timestamptz      NOT NULL,
    created_by        text             NOT NULL,
    recorded_at       timestamptz      NOT NULL DEFAULT now(),
    PRIMARY KEY (portfolio, name)
);

CREATE INDEX signals_by_strategy_ts ON signals (strategy, ts DESC, signal_id DESC);
