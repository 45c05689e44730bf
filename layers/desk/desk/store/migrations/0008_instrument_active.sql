-- Whether the venue is trading the instrument (false while halted or in a break): ingest refreshes
-- it from the venue's markets, and the API's pre-trade gate refuses a halted instrument.
-- depends: 0006_order_activity

ALTER TABLE instruments ADD COLUMN active boolean NOT NULL DEFAULT true;
