"""The fleet node agent (`wirewarden agent`): a VPN server's runtime fed by the control plane."""
