-- Gaps the venue could not fill even when asked again: recorded, never invented.
-- depends: 0004_kill_switch

CREATE TABLE bar_gaps (
    venue       text        NOT NULL,
    symbol      text        NOT NULL,
    timeframe   text        NOT NULL,
    start_ts    timestamptz NOT NULL,
    end_ts      timestamptz NOT NULL,
    missing     integer     NOT NULL CHECK (missing >= 1),
    recorded_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (venue, symbol, timeframe, start_ts),
    CHECK (end_ts > start_ts)
);
