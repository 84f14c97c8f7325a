-- nccl_spec.lua: the nccl backend's Lua surface where the tests run (CI: no GPU). Without a GPU,
-- NCCL or a CUDA build, dist.available("nccl") is false with the reason, and dist.run says the
-- same reason; the GPU round trip itself is tests/dist/nccl.sh and test_nccl_gpu (make test-gpu),
-- and is reported here as pending with the reason when it cannot run.
local chalk = require "chalk"
local dist = require "chalk.dist"

describe("dist nccl backend", function()
  local ok, why = dist.available("nccl")

  it("says whether it can run, and why not", function()
    assert.is_boolean(ok)
    assert.is_string(why)
    if not ok then
      assert.truthy(why:find("CUDA GPU", 1, true) or why:find("NCCL is not available", 1, true)
                    or why:find("built without", 1, true), why)
      print("\nnccl GPU tests SKIPPED here: " .. why)
    else
      assert.truthy(why:find("^NCCL %d+ from "), why)
    end
  end)

  it("dist.run on nccl fails naming what is missing, or runs on one GPU", function()
    if ok then
      local res = dist.run(1, function(w)
        local t = chalk.ones(5):to(w.device)
        w:all_reduce(t, {algo = "native"})
        return w.device, t:to("cpu"):sum():item()
      end, {backend = "nccl"})
      assert.are.equal("cuda:0", res[1])
    else
      local fine, err = pcall(dist.run, 2, function() end, {backend = "nccl"})
      assert.is_false(fine)
      assert.truthy(err:find("dist.run: " .. why, 1, true), err)
    end
  end)

  it("sim and mpi worlds live on the cpu, and an unknown backend is named", function()
    local res = dist.run(2, function(w) return w.device end)
    assert.are.same({"cpu", "cpu"}, res)
    local fine, err = pcall(dist.run, 2, function() end, {backend = "gloo"})
    assert.is_false(fine)
    assert.truthy(err:find('backend "gloo" (sim, mpi or nccl)', 1, true), err)
  end)
end)
