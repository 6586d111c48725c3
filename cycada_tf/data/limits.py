"""What a file may make the project allocate: no more than its own bytes can hold. A count read from a header
(IDX items, a .mat element's size and a variable's shape, a PNG's width x height, a TFRecord's length, a
PyTorch storage's and tensor's extent) is checked against the file's size before anything is allocated from
it: a 220-byte file never asks for 373 GiB. No TensorFlow here: the PyTorch reader imports it too."""

# deflate (zlib, gzip, zip, PNG and MATLAB v5 compress with it) inflates at most 1032-fold: a match copies at
# most 258 bytes and costs at least 2 bits (RFC 1951); SLACK covers headers and a last partial block.
DEFLATE_MAX_RATIO = 1032
SLACK = 1 << 16


def inflated_at_most(compressed_bytes):
    """The most bytes `compressed_bytes` bytes of deflate data can hold once inflated."""
    return compressed_bytes * DEFLATE_MAX_RATIO + SLACK
