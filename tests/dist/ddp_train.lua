-- ddp_train.lua: the SPMD training of examples/ddp.lua, as functions for the dist specs.
return loadfile("examples/ddp.lua")("library")
