"""Turn LAION OIG `unified_abstract_infill` lines into clean, deduplicated training records.

Pure core (no Django), one module per step:

- `clean`: strip markup, URLs and control characters from a text segment;
- `parse`: one JSON line -> `Record` (Background + alternating turns) or a drop reason;
- `dedupe`: the one definition of "near duplicate" and a streaming MinHash/LSH index;
- `files`: hashing writers and the atomic swap of the output directory;
- `prepare`: a whole file in one streaming pass (optionally in worker processes).
"""
