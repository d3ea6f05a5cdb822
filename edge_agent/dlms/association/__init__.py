"""Application associations (Green Book 9.3): the client and server state machines, the
events they hand their caller, their settings, and HLS passes 3/4 incl. the signed pass 3."""
