//! Pipeline engine: KDL pipelines, cache keys, planning, execution and the prunus command line.
