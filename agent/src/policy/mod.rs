//! Zone policy: model, loading and merge, checker, compiler, reference evaluator.
