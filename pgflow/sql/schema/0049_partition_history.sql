-- The runtime tables are partitioned by run id (0048 explains how); from here on every
-- statement sees the partitioned tables.
select pgflow._partition_history();
