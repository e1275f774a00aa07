"""From a crystal structure to a powder pattern: CIF reading, reflections, profiles, synthetic crystals
and the lab-condition augmentation. Only training and evaluation import it; prediction never does."""
