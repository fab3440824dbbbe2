"""The operator's and auditor's console at ``/console``: server-rendered pages over the node's store
and the chain, with the operator's actions going through the admin API's own code
(:mod:`node.ops.actions`). Nothing here imports :mod:`node.api`; the app mounts it."""
