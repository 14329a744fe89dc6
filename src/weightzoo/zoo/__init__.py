"""The zoo file format (HDF5, ``docs/hdf5.md``): writing a training job's file, merging
job files into an experiment's zoo, and reading zoos back."""
