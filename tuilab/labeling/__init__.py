"""What makes a labeling pair and what a decision writes; no Textual, SQL only through store/.

- `candidates`: where the two responses come from (`CandidateSource`,
  `ModelCandidateSource` over `modeling.host.ModelHost`, `SourceSpec`);
- `queue`: the pair queue a worker thread keeps filled (prompt sampling,
  both generations stored, sides randomised);
- `decisions`: what a decision writes (one comparison, committed on return).

Usable from the UI, from a headless annotator and from tests alike.
"""
