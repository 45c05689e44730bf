-- When each order row was first recorded (the desk's time), for the gate's duplicate check and
-- order-message throttle; rows from before this migration take their last update.
-- depends: 0005_bar_gaps

ALTER TABLE orders ADD COLUMN created_at timestamptz;
UPDATE orders SET created_at = updated_at;
ALTER TABLE orders ALTER COLUMN created_at SET NOT NULL;
CREATE INDEX orders_by_created ON orders (created_at);
