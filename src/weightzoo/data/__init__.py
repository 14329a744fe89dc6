"""Data stage: the datasets (digits, MNIST, Fashion-MNIST, CIFAR-10) read from their real
formats and written as one prepared ``.npz`` per dataset."""
