"""Peak search on measured scans (background, Kα doublets, pseudo-Voigt cluster fits); plugins use it
through ``crystalmela.plugin_api.peaklist.find_peaks``."""
