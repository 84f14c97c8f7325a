-- efficiency.lua: chalk.efficiency, the model-efficiency tools of lesson 15 in one place: nn.LoRA
-- (lora.lua), nn.MoE (moe.lua), magnitude pruning (prune.lua), distillation (distill.lua) and the
-- tokens-per-expert picture (moe_chart.lua). Loading it puts nn.LoRA and nn.MoE in nn.
--
--   eff = chalk.efficiency
--   eff.prune.Pruner(model, {sparsity = 0.9})   eff.distill.loss(s, t, y, {temperature = 4})
--   eff.moe_chart.tokens_per_expert(runs, {file = "moe.png"})
return {
  LoRA = require "chalk.lora",
  MoE = require "chalk.moe",
  prune = require "chalk.prune",
  distill = require "chalk.distill",
  moe_chart = require "chalk.moe_chart",
}
