"""Evaluation: the named, versioned protocols (shared with training), a checkpoint evaluated from its file alone,
and one run's milestones cross-evaluated as one job."""
