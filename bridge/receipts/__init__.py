"""What a receipt says about loyalty, and previews of a receipt for a technician without a printer.

`loyalty_block` turns a purchase outcome into a `LoyaltyBlock` (the card is masked the
moment it enters) and `cheque_block` a register cheque's; `render` lays it out for a
printer or as text; `png` draws the text preview; `sample` builds a whole sample cheque
for `posbridge receipt preview`.
"""
