"""Dictionary methods behind one contract (:mod:`featflow.dictionary.base`), registered in
:mod:`featflow.dictionary.registry`; :mod:`featflow.dictionary.files` stores any of them. Nothing is imported here,
so that reading a spec (:mod:`featflow.dictionary.spec`) imports no torch."""
