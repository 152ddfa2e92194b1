import sys
from babel.messages.catalog import Catalog
from babel.messages.pofile import write_po, read_po
from pathlib import Path
path = Path(sys.argv[1]); pairs = eval(open(sys.argv[2]).read())
cat = Catalog(locale="ru", domain="messages", project="office-pbx")
if path.exists():
    with path.open("rb") as f: cat = read_po(f, locale="ru")
for k, v in pairs.items():
    cat.add(k, v)
with path.open("wb") as f:
    write_po(f, cat, width=100, omit_header=False, sort_output=True)
