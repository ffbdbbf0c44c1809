"""The SAS emoji table of the Matrix specification: users of tlschat and of Matrix clients read
the same pictures and names.

Source: the Matrix Client-Server API, "End-to-End Encryption" > "Short Authentication String
(SAS) verification" > "SAS method: emoji",
https://spec.matrix.org/latest/client-server-api/#sas-method-emoji, whose table is
data-definitions/sas-emoji.json in github.com/matrix-org/matrix-spec. Each 6-bit number of the
SAS bytes picks the emoji at that position.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class SasEmoji:
    emoji: str
    name: str


SAS_EMOJI: tuple[SasEmoji, ...] = (
    SasEmoji("🐶", "Dog"),  # 0: U+1F436
    SasEmoji("🐱", "Cat"),  # 1: U+1F431
    SasEmoji("🦁", "Lion"),  # 2: U+1F981
    SasEmoji("🐎", "Horse"),  # 3: U+1F40E
    SasEmoji("🦄", "Unicorn"),  # 4: U+1F984
    SasEmoji("🐷", "Pig"),  # 5: U+1F437
    SasEmoji("🐘", "Elephant"),  # 6: U+1F418
    SasEmoji("🐰", "Rabbit"),  # 7: U+1F430
    SasEmoji("🐼", "Panda"),  # 8: U+1F43C
    SasEmoji("🐓", "Rooster"),  # 9: U+1F413
    SasEmoji("🐧", "Penguin"),  # 10: U+1F427
    SasEmoji("🐢", "Turtle"),  # 11: U+1F422
    SasEmoji("🐟", "Fish"),  # 12: U+1F41F
    SasEmoji("🐙", "Octopus"),  # 13: U+1F419
    SasEmoji("🦋", "Butterfly"),  # 14: U+1F98B
    SasEmoji("🌷", "Flower"),  # 15: U+1F337
    SasEmoji("🌳", "Tree"),  # 16: U+1F333
    SasEmoji("🌵", "Cactus"),  # 17: U+1F335
    SasEmoji("🍄", "Mushroom"),  # 18: U+1F344
    SasEmoji("🌏", "Globe"),  # 19: U+1F30F
    SasEmoji("🌙", "Moon"),  # 20: U+1F319
    SasEmoji("☁️", "Cloud"),  # 21: U+2601U+FE0F
    SasEmoji("🔥", "Fire"),  # 22: U+1F525
    SasEmoji("🍌", "Banana"),  # 23: U+1F34C
    SasEmoji("🍎", "Apple"),  # 24: U+1F34E
    SasEmoji("🍓", "Strawberry"),  # 25: U+1F353
    SasEmoji("🌽", "Corn"),  # 26: U+1F33D
    SasEmoji("🍕", "Pizza"),  # 27: U+1F355
    SasEmoji("🎂", "Cake"),  # 28: U+1F382
    SasEmoji("❤️", "Heart"),  # 29: U+2764U+FE0F
    SasEmoji("😀", "Smiley"),  # 30: U+1F600
    SasEmoji("🤖", "Robot"),  # 31: U+1F916
    SasEmoji("🎩", "Hat"),  # 32: U+1F3A9
    SasEmoji("👓", "Glasses"),  # 33: U+1F453
    SasEmoji("🔧", "Spanner"),  # 34: U+1F527
    SasEmoji("🎅", "Santa"),  # 35: U+1F385
    SasEmoji("👍", "Thumbs Up"),  # 36: U+1F44D
    SasEmoji("☂️", "Umbrella"),  # 37: U+2602U+FE0F
    SasEmoji("⌛", "Hourglass"),  # 38: U+231B
    SasEmoji("⏰", "Clock"),  # 39: U+23F0
    SasEmoji("🎁", "Gift"),  # 40: U+1F381
    SasEmoji("💡", "Light Bulb"),  # 41: U+1F4A1
    SasEmoji("📕", "Book"),  # 42: U+1F4D5
    SasEmoji("✏️", "Pencil"),  # 43: U+270FU+FE0F
    SasEmoji("📎", "Paperclip"),  # 44: U+1F4CE
    SasEmoji("✂️", "Scissors"),  # 45: U+2702U+FE0F
    SasEmoji("🔒", "Lock"),  # 46: U+1F512
    SasEmoji("🔑", "Key"),  # 47: U+1F511
    SasEmoji("🔨", "Hammer"),  # 48: U+1F528
    SasEmoji("☎️", "Telephone"),  # 49: U+260EU+FE0F
    SasEmoji("🏁", "Flag"),  # 50: U+1F3C1
    SasEmoji("🚂", "Train"),  # 51: U+1F682
    SasEmoji("🚲", "Bicycle"),  # 52: U+1F6B2
    SasEmoji("✈️", "Aeroplane"),  # 53: U+2708U+FE0F
    SasEmoji("🚀", "Rocket"),  # 54: U+1F680
    SasEmoji("🏆", "Trophy"),  # 55: U+1F3C6
    SasEmoji("⚽", "Ball"),  # 56: U+26BD
    SasEmoji("🎸", "Guitar"),  # 57: U+1F3B8
    SasEmoji("🎺", "Trumpet"),  # 58: U+1F3BA
    SasEmoji("🔔", "Bell"),  # 59: U+1F514
    SasEmoji("⚓", "Anchor"),  # 60: U+2693
    SasEmoji("🎧", "Headphones"),  # 61: U+1F3A7
    SasEmoji("📁", "Folder"),  # 62: U+1F4C1
    SasEmoji("📌", "Pin"),  # 63: U+1F4CC
)
