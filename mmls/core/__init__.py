"""The ground floor: errors, the params layer, atomic IO, and every path and name of a pipeline."""
