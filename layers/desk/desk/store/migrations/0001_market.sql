-- Market data: value domains, instruments, and bars (a TimescaleDB hypertable when the extension
-- can be loaded, monthly native RANGE partitions otherwise: Aurora PostgreSQL has no Timescale).

-- NUMERIC accepts 'NaN' (and 'Infinity' from PostgreSQL 14); scale() is NULL for both, so these
-- domains keep non-finite values out even if a caller bypasses the Python validation. NULL passes
-- (nullability is each column's business), hence the explicit VALUE IS NULL.
CREATE DOMAIN desk_price AS numeric CHECK (VALUE IS NULL OR (scale(VALUE) IS NOT NULL AND VALUE > 0));
CREATE DOMAIN desk_quantity AS numeric CHECK (VALUE IS NULL OR (scale(VALUE) IS NOT NULL AND VALUE >= 0));
CREATE DOMAIN desk_money AS numeric CHECK (VALUE IS NULL OR scale(VALUE) IS NOT NULL);

CREATE TABLE instruments (
    venue            text        NOT NULL,
    symbol           text        NOT NULL,
    base             text        NOT NULL,
    quote            text        NOT NULL,
    precision_mode   text        NOT NULL,
    price_precision  desk_money       NOT NULL,
    amount_precision desk_money       NOT NULL,
    min_amount       desk_quantity,
    max_amount       desk_quantity,
    min_price        desk_quantity,
    max_price        desk_quantity,
    min_notional     desk_quantity,
    max_notional     desk_quantity,
    venue_symbol     text,
    updated_at       timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (venue, symbol)
);

DO $$
DECLARE
    columns constant text := $cols$
        venue      text        NOT NULL,
        symbol     text        NOT NULL,
        timeframe  text        NOT NULL,
        ts         timestamptz NOT NULL,
        open       desk_price       NOT NULL,
        high       desk_price       NOT NULL,
        low        desk_price       NOT NULL,
        close      desk_price       NOT NULL,
        volume     desk_quantity    NOT NULL,
        revisions  integer     NOT NULL DEFAULT 0,  -- times a stored bar was corrected by the venue
        updated_at timestamptz NOT NULL DEFAULT now(),
        PRIMARY KEY (venue, symbol, timeframe, ts),
        CONSTRAINT bars_ohlc CHECK (high >= low AND open BETWEEN low AND high AND close BETWEEN low AND high)
    $cols$;
    timescale_schema text;
BEGIN
    IF EXISTS (SELECT 1 FROM pg_available_extensions WHERE name = 'timescaledb') THEN
        BEGIN
            CREATE EXTENSION IF NOT EXISTS timescaledb;
        EXCEPTION WHEN OTHERS THEN
            -- Installed but not in shared_preload_libraries, or no privilege: fall back, loudly.
            RAISE WARNING 'timescaledb is available but cannot be loaded (%); bars use native partitions', SQLERRM;
        END;
    END IF;
    SELECT extnamespace::regnamespace::text INTO timescale_schema FROM pg_extension WHERE extname = 'timescaledb';
    IF timescale_schema IS NOT NULL THEN
        EXECUTE format('CREATE TABLE bars (%s)', columns);
        EXECUTE format(
            'SELECT %s.create_hypertable(%L, %L, chunk_time_interval => interval %L)',
            timescale_schema, 'bars', 'ts', '1 month'
        );
    ELSE
        EXECUTE format('CREATE TABLE bars (%s) PARTITION BY RANGE (ts)', columns);
    END IF;
END
$$;

-- Creates the monthly partitions (UTC months) covering [p_from, p_to], skipping existing ones.
-- Loaders call it before writing a range, so a missing month is created ahead rather than
-- caught by a DEFAULT partition (whose rows would block creating that month's partition later).
-- A no-op returning 0 when bars is a hypertable (Timescale creates its chunks itself).
CREATE FUNCTION ensure_bar_partitions(p_from timestamptz, p_to timestamptz) RETURNS integer
LANGUAGE plpgsql AS $$
DECLARE
    parent_schema text;
    month_start timestamp;
    last_month timestamp;
    part text;
    created integer := 0;
BEGIN
    SELECT n.nspname INTO parent_schema
      FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
     WHERE c.oid = 'bars'::regclass AND c.relkind = 'p';
    IF parent_schema IS NULL OR p_to < p_from THEN
        RETURN 0;
    END IF;
    -- Month arithmetic on UTC wall-clock timestamps: on timestamptz it would follow the session TimeZone.
    month_start := date_trunc('month', p_from AT TIME ZONE 'UTC');
    last_month := date_trunc('month', p_to AT TIME ZONE 'UTC');
    WHILE month_start <= last_month LOOP
        part := 'bars_' || to_char(month_start, 'YYYY_MM');
        IF to_regclass(format('%I.%I', parent_schema, part)) IS NULL THEN
            BEGIN
                EXECUTE format(
                    'CREATE TABLE %I.%I PARTITION OF %I.bars FOR VALUES FROM (%L) TO (%L)',
                    parent_schema, part, parent_schema,
                    month_start::text || '+00', (month_start + interval '1 month')::text || '+00'
                );
                created := created + 1;
            EXCEPTION WHEN duplicate_table THEN
                NULL;  -- a concurrent loader created it between our check and our CREATE
            END;
        END IF;
        month_start := month_start + interval '1 month';
    END LOOP;
    RETURN created;
END
$$;
