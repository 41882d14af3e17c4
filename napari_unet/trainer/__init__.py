"""The separate training process: ``protocol`` (typed jobs and events), ``process`` (the parent's
handle, ``TrainerProcess``), ``child`` (the child's loop around ``engine.train.fit``). No Qt here."""
