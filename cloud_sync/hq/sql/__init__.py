"""HQ's SQL: the schema, the two database engines, and the projections of events."""
