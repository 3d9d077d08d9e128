"""Compliance: the fairness audit of segments, controls and targeting, and due diligence.

* :mod:`.fairness`: rates and disparity ratios across region and KYC tier with bootstrap
  intervals, and whether an attribute still predicts a control once behaviour is
  accounted for;
* :mod:`.diligence`: due-diligence tiers (standard / enhanced) and the review queue.
"""
