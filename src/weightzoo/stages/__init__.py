"""What each workflow rule does, as plain functions: one module per stage. The scripts in
``workflow/scripts/`` are thin adapters around these, and tests call them directly. Each
rule lists the import closure of its stage module as input (:mod:`weightzoo.codedeps`), so
a module keeps only the imports its own rules need."""
