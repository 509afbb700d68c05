"""Write the preference demo data: questions with a concise, correct answer (chosen) and a
rambling, wrong one (rejected). Run: python examples/preference/make_data.py

train.json (sharegpt ranking, LLaMA-Factory's dpo_*_demo.json shape) and heldout.json (the same
shape, other questions) are used by examples/preference/dpo.yaml and bench/dpo_margin.py.
"""

import json
import random
from pathlib import Path

HERE = Path(__file__).parent
RAMBLE = [
    "Well, that is a really interesting question and people have argued about it for ages. ",
    "Hmm, let me think about this for a while, there are many ways to look at it. ",
    "Great question! Before answering I should say that it depends on a lot of things. ",
    "Okay so, honestly, this is one of those things that is hard to say for sure. ",
]
FACTS = [  # (question, correct short answer, wrong answer)
    ("What is the capital of France?", "Paris.", "I believe it is probably Lyon"),
    ("What is 7 times 8?", "56.", "it comes out to around 54"),
    ("How many days are in a week?", "Seven.", "there are usually about ten"),
    ("What color is a ripe banana?", "Yellow.", "most people would say it is blue"),
    (
        "What is the boiling point of water at sea level in Celsius?",
        "100 degrees Celsius.",
        "I think it is 50 degrees",
    ),
    ("How many legs does a spider have?", "Eight.", "spiders have six legs like insects"),
    ("What is the largest planet in our solar system?", "Jupiter.", "it is probably Mars"),
    ("What is 12 plus 15?", "27.", "I would guess 31"),
    ("Which gas do plants absorb from the air?", "Carbon dioxide.", "plants mostly absorb helium"),
    ("How many continents are there?", "Seven.", "there are about twelve of them"),
    ("What is the chemical symbol for gold?", "Au.", "the symbol is Gd I think"),
    ("What is the square root of 81?", "9.", "it is somewhere near 7"),
    ("Who wrote Romeo and Juliet?", "William Shakespeare.", "it was Charles Dickens"),
    ("What is the freezing point of water in Celsius?", "0 degrees Celsius.", "water freezes at 20 degrees"),
    ("How many hours are in a day?", "24.", "a day has roughly 30 hours"),
    ("What is the capital of Japan?", "Tokyo.", "I am fairly sure it is Osaka"),
    ("What is 100 divided by 4?", "25.", "that gives about 20"),
    ("Which planet is known as the Red Planet?", "Mars.", "that would be Venus"),
    ("How many sides does a triangle have?", "Three.", "a triangle has four sides"),
    ("What is the tallest animal?", "The giraffe.", "the tallest animal is the horse"),
    ("What language is spoken in Brazil?", "Portuguese.", "people in Brazil speak Spanish"),
    ("What is 9 minus 4?", "5.", "I think it is 3"),
    ("What is the capital of Italy?", "Rome.", "it is Milan of course"),
    ("How many minutes are in an hour?", "60.", "an hour has 100 minutes"),
    ("What is H2O commonly called?", "Water.", "H2O is the formula for salt"),
    ("Which ocean is the largest?", "The Pacific Ocean.", "the Atlantic is the biggest"),
    ("What is 6 times 6?", "36.", "it is 32 or so"),
    ("How many wheels does a bicycle have?", "Two.", "a bicycle has three wheels"),
    ("What is the capital of Germany?", "Berlin.", "the capital is Munich"),
    ("What do bees make?", "Honey.", "bees make milk"),
    ("What is 3 squared?", "9.", "three squared is six"),
    ("Which animal is known as man's best friend?", "The dog.", "that is the goldfish"),
    ("What is the capital of Spain?", "Madrid.", "it is Barcelona"),
    ("How many months are in a year?", "Twelve.", "there are ten months"),
    ("What is 15 minus 7?", "8.", "I would say 9"),
    ("What is the opposite of hot?", "Cold.", "the opposite of hot is warm"),
    ("How many planets are in the solar system?", "Eight.", "there are fifteen planets"),
    ("What is the main language of the United States?", "English.", "it is French"),
    ("What is 2 to the power of 5?", "32.", "it is 25"),
    ("What shape has four equal sides and four right angles?", "A square.", "that is a circle"),
    ("What is the capital of Canada?", "Ottawa.", "it is Toronto"),
    ("How many zeros are in one thousand?", "Three.", "one thousand has four zeros"),
    ("What is 11 times 11?", "121.", "I think it is 111"),
    ("Which star is at the center of our solar system?", "The Sun.", "the center is the Moon"),
    ("What is the capital of Egypt?", "Cairo.", "it is Alexandria"),
    ("How many strings does a standard guitar have?", "Six.", "a guitar has nine strings"),
    ("What is 45 plus 55?", "100.", "that adds up to 90"),
    ("Which metal is liquid at room temperature?", "Mercury.", "that is iron"),
]


def row(q: str, good: str, bad: str, rng: random.Random) -> dict:
    rambling = rng.choice(RAMBLE) + bad + ", but I could be wrong about that, it is hard to be sure."
    return {
        "conversations": [{"from": "human", "value": q}],
        "chosen": {"from": "gpt", "value": good},
        "rejected": {"from": "gpt", "value": rambling},
    }


def main() -> None:
    rng = random.Random(0)
    rows = [row(*f, rng) for f in FACTS]
    (HERE / "train.json").write_text(json.dumps(rows[:36], indent=1, ensure_ascii=False) + "\n")
    (HERE / "heldout.json").write_text(json.dumps(rows[36:], indent=1, ensure_ascii=False) + "\n")
    print(f"wrote {len(rows[:36])} training and {len(rows[36:])} held-out pairs")


if __name__ == "__main__":
    main()
