-- `rawrxd report` runs this file: the Phase 3 documents from the results store (see docs/init.lua).
local rx = require "rawrxd"
return require("docs").main(rx.args)
