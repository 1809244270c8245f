-- Typography shared by both renderers (listed in _quarto.yml's `filters`, and used by
-- tools/book.py): fixes that belong to the printed page, not to one renderer.

local APOSTROPHE = "\u{2019}"

-- pandoc reads "GPT-4's" as "GPT-4’s" but writes typst's plain ', whose smart quotes
-- print a prime after a digit ("GPT-4′s"): keep the apostrophe as a raw character.
function Str(s)
  if not FORMAT:match("typst") or not s.text:find(APOSTROPHE, 1, true) then return nil end
  local out = pandoc.List({})
  local rest = s.text
  while true do
    local i, j = rest:find(APOSTROPHE, 1, true)
    if not i then break end
    if i > 1 then out:insert(pandoc.Str(rest:sub(1, i - 1))) end
    out:insert(pandoc.RawInline("typst", APOSTROPHE))
    rest = rest:sub(j + 1)
  end
  if #rest > 0 then out:insert(pandoc.Str(rest)) end
  return out
end

-- Pipe tables with long cells get column widths from the dashes of their rule line
-- (`|---|---|`: all equal), which squeezes a short column ("Shake-speare"). Let typst
-- size the columns from their content instead.
function Table(tbl)
  if not FORMAT:match("typst") then return nil end
  for i, spec in ipairs(tbl.colspecs) do
    tbl.colspecs[i] = {spec[1], pandoc.ColWidthDefault}
  end
  return tbl
end
