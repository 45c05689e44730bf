-- Analytics outputs: regimes, correlation snapshots, risk snapshots and signals.
-- depends: 0001_market

CREATE TABLE regimes (
    symbol        text               NOT NULL,
    timeframe     text               NOT NULL,
    model         text               NOT NULL,
    ts            timestamptz        NOT NULL,
    label         text               NOT NULL,
    state         integer            NOT NULL CHECK (state >= 0),
    probabilities double precision[] NOT NULL,
    recorded_at   timestamptz        NOT NULL DEFAULT now(),
    PRIMARY KEY (symbol, timeframe, model, ts)
);
CREATE INDEX regimes_latest ON regimes (symbol, timeframe, ts DESC);

CREATE TABLE correlation_snapshots (
    timeframe   text               NOT NULL,
    method      text               NOT NULL,
    "window"    integer            NOT NULL CHECK ("window" >= 2),
    ts          timestamptz        NOT NULL,
    symbols     text[]             NOT NULL,
    matrix      double precision[] NOT NULL,  -- n x n, rows in the order of symbols
    recorded_at timestamptz        NOT NULL DEFAULT now(),
    PRIMARY KEY (timeframe, method, "window", ts)
);

CREATE TABLE risk_snapshots (
    portfolio      text             NOT NULL,
    ts             timestamptz      NOT NULL,
    confidence     double precision NOT NULL,
    horizon_days   double precision NOT NULL,
    var            double precision NOT NULL,
    cvar           double precision NOT NULL,
    method         text             NOT NULL,
    equity         desk_money            NOT NULL,
    gross_exposure desk_money            NOT NULL,
    net_exposure   desk_money            NOT NULL,
    recorded_at    timestamptz      NOT NULL DEFAULT now(),
    PRIMARY KEY (portfolio, ts)
);

CREATE TABLE signals (
    signal_id     text             PRIMARY KEY,
    strategy      text             NOT NULL,
    venue         text             NOT NULL,
    symbol        text             NOT NULL,
    timeframe     text             NOT NULL,
    ts            timestamptz      NOT NULL,
    target_weight double precision NOT NULL,
    strength      double precision NOT NULL,
    regime        text,
    recorded_at   timestamptz      NOT NULL DEFAULT now()
);
CREATE INDEX signals_by_strategy ON signals (strategy, symbol, ts DESC);
