"""Growth: campaign audiences, campaigns with randomized holdouts, measured uplift.

* :mod:`.spec` reads declarative YAML files with the line of every key, so a bad file is
  a one-line error naming ``FILE:LINE`` and the key;
* :mod:`.inputs` gathers the per-account decision inputs audiences select on;
* :mod:`.audience` selects accounts by a spec and writes a reproducible audience file;
* :mod:`.campaigns` keeps the campaign registry in the store and draws the holdout;
* :mod:`.uplift` measures a campaign (difference in means and CUPED, overall and per
  segment);
* :mod:`.ranking` ranks accounts for the next campaign (T-learner) and scores the
  ranking on the holdout (Qini, AUUC).
"""
