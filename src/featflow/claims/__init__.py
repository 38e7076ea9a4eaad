"""One verdict per claim of the papers (issue 25, SPEC 6): a registry per branch of the claims a run can test
(:mod:`.complexity`, :mod:`.fv`, :mod:`.frequency`, :mod:`.theory`), each with its statistic, the paper's value or
direction, the null, its precondition and a reader of the branch's output files; the verdict logic over training
seeds (:mod:`.verdict`); the claims table gathering every replicate (:mod:`.registry`).

Layer: above the branches. It reads their files (through :mod:`featflow.store` and pandas), never their code, and
imports only core units and ``metrics``; nothing imports it but its rule's stage (docs/architecture.md).
"""
