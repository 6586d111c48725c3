"""Networks: shared layers, the digit networks of the paper's Figure 7."""
