"""The AiFi Nanostore reference data (layout, planogram, labelled cases) as storeedge data."""
