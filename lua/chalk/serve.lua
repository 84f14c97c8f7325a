-- serve.lua: chalk.serve (the REPL global `serve`), the serving stack of lesson 13 built from the
-- core: nn.CharGPT (lua/chalk/chargpt.lua) and its KV cache.
local serve = {}
serve.CharGPT = require "chalk.chargpt"
return serve
