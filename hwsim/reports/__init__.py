"""Reports that compose training, the integer reference and hwsim (run by ``hwsim report ...``)."""
