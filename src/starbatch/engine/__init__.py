"""The batching engine: task tables and their validation, parameters, data-product
declarations, planning, the manifest, the batch runner, result tables, atomic writes
and flags. It knows no analysis and no physics: what needs the analyses takes a
registry ({name: Analysis subclass}) as an argument."""
