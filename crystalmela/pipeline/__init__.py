"""What ``predict`` runs: read → Pattern → grid → preprocess → features → classifiers → ensemble →
Prediction. Imports no simulation and no training code."""
