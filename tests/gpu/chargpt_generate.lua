-- chargpt_generate.lua: make test-gpu's check of the char GPT on CUDA: greedy generation with the KV
-- cache gives the same text on the GPU as on the CPU, and the cache's bytes are counted under the
-- kv_cache category of the CUDA allocator (2 L H d_head context B elements of 4 bytes).
--   build/chalk tests/gpu/chargpt_generate.lua     (prints SKIPPED and why without a GPU)
if not chalk.cuda.is_available() then
  print("chargpt_generate: SKIPPED: " .. chalk.cuda.unavailable_reason())
  return
end
chalk.manual_seed(3)
local L, H, D, C = 2, 4, 64, 32
local lm = nn.CharGPT { layers = L, heads = H, dim = D, context = C }
local prompts = { "ca", "bo", "zy" }
local cpu_text = lm:generate(prompts, { max_tokens = 20, temperature = 0 })
lm:to("cuda")
local cuda_text, st = lm:generate(prompts, { max_tokens = 20, temperature = 0 })
for i = 1, #prompts do
  print(("%-4s cpu %-22s cuda %s"):format(prompts[i], cpu_text[i], cuda_text[i]))
  assert(cpu_text[i] == cuda_text[i], "chargpt_generate: CUDA generation differs from the CPU's for " .. prompts[i])
end
local want = 2 * L * H * (D // H) * C * #prompts * 4
assert(st.kv_bytes == want, ("chargpt_generate: kv_cache bytes on cuda %d, expected 2 L H d C B x 4 = %d"):format(st.kv_bytes, want))
print(("chargpt_generate: PASS (%d prompts equal on CPU and CUDA; kv_cache %d B = 2 L H d C B x 4)"):format(#prompts, want))
