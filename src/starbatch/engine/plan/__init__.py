"""Planning: from the task tables to batches and the plan's files. Importing this
package imports nothing (the Snakefile and batch jobs read the plan with read.py alone).

- table.py: reading and validating the task tables (CSV, batch-mode YAML specs);
- batches.py: grouping tasks into batches by significant parameters, stable IDs;
- sizing.py: batch sizes, fixed or from measured costs (max_batch_size: auto);
- files.py: writing the plan's files; read.py: reading them back (light);
- record.py: what a plan was made from, so an unchanged table costs a hash;
- make.py: the one entry point, make_plan;

Column-wise helpers that keep a million rows cheap are engine/columns.py."""
