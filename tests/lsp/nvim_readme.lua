-- Runs the README's Neovim snippet as a user's config would, then checks that it attaches
-- Cromwell to a Python buffer and that the code actions come through it:
--   nvim --headless --clean -l nvim_readme.lua SNIPPET.lua FILE RESULT_JSON
local snippet, file, result_path = arg[1], arg[2], arg[3]
local out = {}
local function finish(code)
  local f = assert(io.open(result_path, "w"))
  f:write(vim.json.encode(out))
  f:close()
  os.exit(code)
end

vim.g.mapleader = " "
dofile(snippet)
vim.cmd.edit(vim.fn.fnameescape(file))
local client
vim.wait(20000, function()
  client = vim.lsp.get_clients({ bufnr = 0, name = "cromwell" })[1]
  return client ~= nil and client.initialized
end, 50)
if not client then
  out.error = "no cromwell client attached"
  finish(1)
end
out.root_dir = client.root_dir
out.keymap = vim.fn.maparg("<leader>ce", "x") ~= ""
-- The snippet's LspAttach set-up: completion with autotrigger on this buffer.
out.omnifunc = vim.bo.omnifunc
out.autotrigger = #vim.api.nvim_get_autocmds({ event = "InsertCharPre", buffer = 0 }) > 0
out.trigger_characters = client.server_capabilities.completionProvider.triggerCharacters or {}
local params = {
  textDocument = { uri = vim.uri_from_bufnr(0) },
  range = { start = { line = 26, character = 8 }, ["end"] = { line = 26, character = 8 } },
  context = { diagnostics = {} },
}
local response = client:request_sync("textDocument/codeAction", params, 20000, 0)
out.titles = {}
for _, a in ipairs(response and response.result or {}) do
  table.insert(out.titles, a.title)
end
client:stop()
finish(0)
