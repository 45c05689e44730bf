-- Trading ledger: plans, orders, the append-only order-event log, fills, positions, reconciliation.
-- depends: 0001_market

-- Raised by triggers on audit tables: rows there are facts, corrected by appending, never rewritten.
CREATE FUNCTION reject_audit_change() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION '% is append-only: % refused', TG_TABLE_NAME, TG_OP USING ERRCODE = 'restrict_violation';
END
$$;

CREATE TABLE plans (
    plan_id           text          PRIMARY KEY,
    signal_id         text,
    venue             text          NOT NULL,
    symbol            text          NOT NULL,
    side              text          NOT NULL CHECK (side IN ('buy', 'sell')),
    quantity          desk_quantity NOT NULL,
    created_at        timestamptz   NOT NULL,
    schedule          text          NOT NULL,
    document          jsonb         NOT NULL,  -- the full ExecutionPlan (Decimals as strings: exact)
    recorded_at       timestamptz   NOT NULL DEFAULT now()
);
CREATE INDEX plans_by_signal ON plans (signal_id);

CREATE TABLE orders (
    client_order_id text          PRIMARY KEY,
    plan_id         text,
    venue           text          NOT NULL,
    symbol          text          NOT NULL,
    side            text          NOT NULL CHECK (side IN ('buy', 'sell')),
    order_type      text          NOT NULL,
    quantity        desk_quantity NOT NULL,
    limit_price     desk_price,
    time_in_force   text          NOT NULL,
    state           text          NOT NULL,
    state_rank      smallint      NOT NULL,  -- the domain's rank: an update never lowers it
    venue_order_id  text,
    filled_quantity desk_quantity NOT NULL,
    average_price   desk_price,
    reject_reason   text,
    updated_at      timestamptz   NOT NULL,
    recorded_at     timestamptz   NOT NULL DEFAULT now(),
    CHECK (filled_quantity <= quantity)
);
CREATE INDEX orders_open ON orders (venue) WHERE state_rank < 4;

CREATE TABLE order_events (
    event_id        text        PRIMARY KEY,
    type            text        NOT NULL,
    version         integer     NOT NULL,
    occurred_at     timestamptz NOT NULL,
    correlation_id  text        NOT NULL,
    client_order_id text,
    envelope        jsonb       NOT NULL,
    recorded_at     timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX order_events_by_order ON order_events (client_order_id, occurred_at);
CREATE TRIGGER order_events_append_only BEFORE UPDATE OR DELETE ON order_events
    FOR EACH ROW EXECUTE FUNCTION reject_audit_change();
CREATE TRIGGER order_events_no_truncate BEFORE TRUNCATE ON order_events
    FOR EACH STATEMENT EXECUTE FUNCTION reject_audit_change();

CREATE TABLE fills (
    venue           text          NOT NULL,
    venue_trade_id  text          NOT NULL,
    client_order_id text          NOT NULL,
    symbol          text          NOT NULL,
    side            text          NOT NULL CHECK (side IN ('buy', 'sell')),
    quantity        desk_quantity NOT NULL CHECK (quantity > 0),
    price           desk_price    NOT NULL,
    occurred_at     timestamptz   NOT NULL,
    fee             desk_money    NOT NULL DEFAULT 0,
    fee_currency    text,
    liquidity       text CHECK (liquidity IN ('maker', 'taker')),
    adjustment      boolean       NOT NULL DEFAULT false,  -- taken from the venue by reconciliation
    recorded_at     timestamptz   NOT NULL DEFAULT now(),
    PRIMARY KEY (venue, venue_trade_id)
);
CREATE INDEX fills_by_symbol ON fills (venue, symbol, occurred_at);
CREATE INDEX fills_by_order ON fills (client_order_id);

-- One step of the weighted-average-cost fold of desk.domain.positions: state is
-- {signed quantity, average price, realised pnl}. Averages carry 40 decimal places (trailing
-- zeros trimmed); the domain divides at 50 significant digits, so they agree far below a tick.
CREATE FUNCTION position_step(state numeric[], side text, qty numeric, price numeric) RETURNS numeric[]
LANGUAGE plpgsql IMMUTABLE STRICT AS $$
DECLARE
    q numeric := state[1];
    avg_price numeric := state[2];
    pnl numeric := state[3];
    signed numeric := CASE WHEN side = 'buy' THEN qty ELSE -qty END;
    new_q numeric := q + signed;
BEGIN
    IF q = 0 OR sign(q) = sign(signed) THEN
        avg_price := trim_scale(round((abs(q) * avg_price + qty * price)::numeric(1000, 40) / abs(new_q), 40));
    ELSE
        pnl := pnl + least(abs(q), qty) * (price - avg_price) * sign(q);
        IF new_q = 0 THEN
            avg_price := 0;
        ELSIF sign(new_q) <> sign(q) THEN
            avg_price := price;  -- flipped: the remainder opens at the fill price
        END IF;
    END IF;
    RETURN ARRAY[new_q, avg_price, pnl];
END
$$;

CREATE AGGREGATE position_fold(text, numeric, numeric) (
    SFUNC = position_step,
    STYPE = numeric[],
    INITCOND = '{0,0,0}'
);

-- Positions are never stored: they are the fold of the fills, in (occurred_at, venue_trade_id)
-- order exactly as desk.domain.positions.position_from_fills sorts them.
CREATE VIEW positions AS
SELECT venue,
       symbol,
       folded[1] AS quantity,
       folded[2] AS average_price,
       folded[3] AS realised_pnl,
       fill_count,
       last_fill_at
  FROM (SELECT venue,
               symbol,
               position_fold(side, quantity, price ORDER BY occurred_at, venue_trade_id) AS folded,
               count(*) AS fill_count,
               max(occurred_at) AS last_fill_at
          FROM fills
         GROUP BY venue, symbol) AS f;

CREATE TABLE reconciliation_runs (
    run_id       text        PRIMARY KEY,
    venue        text        NOT NULL,
    started_at   timestamptz NOT NULL,
    finished_at  timestamptz NOT NULL,
    status       text        NOT NULL CHECK (status IN ('clean', 'repaired', 'drift', 'failed')),
    drift_count  integer     NOT NULL DEFAULT 0 CHECK (drift_count >= 0),
    details      jsonb       NOT NULL DEFAULT '{}',
    recorded_at  timestamptz NOT NULL DEFAULT now(),
    CHECK (finished_at >= started_at)
);
CREATE INDEX reconciliation_runs_recent ON reconciliation_runs (venue, started_at DESC);
