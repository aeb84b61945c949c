"""The database: tables, the store (engine, transactions, row locks), read-side queries,
leases and migrations."""
