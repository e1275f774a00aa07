"""Trial-indexing figures of merit (cubic, tetragonal, hexagonal, rhombohedral, orthorhombic) plus
1/d² peak positions, classified by extremely randomized trees."""
