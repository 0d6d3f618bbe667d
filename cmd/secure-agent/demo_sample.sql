-- The demo's sample database: a small shop, with the shapes a catalog meets in real life.
CREATE TABLE customers (
    id          INTEGER PRIMARY KEY,
    email       TEXT NOT NULL UNIQUE,
    full_name   TEXT NOT NULL,
    country     TEXT DEFAULT 'NL',
    created_at  TEXT NOT NULL DEFAULT (datetime('now'))
);
CREATE TABLE products (
    sku         TEXT PRIMARY KEY,
    title       TEXT NOT NULL,
    price_cents INTEGER NOT NULL CHECK (price_cents >= 0),
    "weight (g)" REAL
);
CREATE TABLE orders (
    id          INTEGER PRIMARY KEY,
    customer_id INTEGER NOT NULL REFERENCES customers(id),
    placed_at   TEXT NOT NULL,
    status      TEXT NOT NULL DEFAULT 'new'
);
CREATE TABLE order_items (
    order_id    INTEGER NOT NULL REFERENCES orders(id),
    line        INTEGER NOT NULL,
    sku         TEXT NOT NULL REFERENCES products(sku),
    quantity    INTEGER NOT NULL DEFAULT 1,
    PRIMARY KEY (order_id, line)
);
CREATE TABLE "Audit Log" (
    "when"      TEXT,
    "select"    TEXT,
    détails     TEXT
);
CREATE INDEX orders_by_customer ON orders(customer_id);
CREATE VIEW order_totals AS
    SELECT o.id AS order_id, o.customer_id, SUM(p.price_cents * i.quantity) AS total_cents
    FROM orders o JOIN order_items i ON i.order_id = o.id JOIN products p ON p.sku = i.sku
    GROUP BY o.id, o.customer_id;
CREATE VIEW big_spenders AS
    SELECT customer_id, SUM(total_cents) AS spent_cents FROM order_totals GROUP BY customer_id HAVING SUM(total_cents) > 10000;
INSERT INTO customers (id, email, full_name) VALUES (1, 'ada@example.com', 'Ada Lovelace'), (2, 'alan@example.com', 'Alan Turing');
INSERT INTO products VALUES ('SKU-1', 'Difference engine', 1999900, 15000.5), ('SKU-2', 'Punch cards (100)', 499, 120);
INSERT INTO orders VALUES (1, 1, '2026-11-01', 'paid'), (2, 2, '2026-11-02', 'new');
INSERT INTO order_items VALUES (1, 1, 'SKU-1', 1), (1, 2, 'SKU-2', 3), (2, 1, 'SKU-2', 10);
ANALYZE;
