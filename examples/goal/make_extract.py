"""Writes the JSON-extraction goal's prompts (examples/goal/extract_prompts.jsonl: requests only, for
the teacher) and its held-out checks (extract_checks.jsonl: requests with the reference JSON), from
disjoint names and cities so no check's person is in the training prompts. Deterministic:
`python examples/goal/make_extract.py` rewrites the same files."""

from __future__ import annotations

import json
import random
from pathlib import Path

HERE = Path(__file__).parent
FIRST = """Maria Tom Aisha Kenji Lucas Priya Omar Elena Jonas Mei Diego Sara Ivan Nadia Felix Amara
Hugo Lena Ravi Zoe Mateo Ines Kofi Yuki Anton Clara Samir Freya Leo Rosa Emil Dara Noor Pablo Ada
Viktor Lina Tariq Maya Oscar Hana Bruno Ida Karim Vera Nils Leila Marco Sofia Arjun""".split()
LAST = """Lopez Becker Khan Sato Silva Patel Haddad Novak Berg Chen Ruiz Holm Petrov Aziz Weber Mensah
Moreau Fischer Rao Clarke Garcia Costa Owusu Tanaka Kral Dubois Nasser Lund Rossi Marin Vogel Byrne
Iqbal Ortega Lind Kowal Said Reyes Nyberg Park Santos Olsen Farah Horvat Strand Amini Conti Greco
Mehta""".split()
CITIES = """Lisbon Oslo Nairobi Osaka Porto Lima Dublin Cairo Vienna Seoul Quito Turku Leeds Accra
Lyon Graz Pune Perth Bergen Split Cork Kyoto Basel Tunis Malmo Ghent Hanoi Bilbao Krakow Derby
Austin Denver Tampa Dakar Riga Kazan Fez Durban Bremen Genoa""".split()
SHAPES = [
    "{name} is {age} and lives in {city}.",
    "{name}, aged {age}, moved to {city} last spring.",
    "Meet {name} from {city}. {name} turned {age} this year.",
    "At {age}, {name} runs a small bakery in {city}.",
    "{city} is home to {name}, who is {age} years old.",
    "Our new colleague {name} ({age}) joins the {city} office on Monday.",
    "{name} celebrated a {age}th birthday with friends in {city}.",
]
ASK = 'Extract the person\'s name, age and city from this text as JSON with the keys "name", "age" and "city": {text}'


def rows(rng: random.Random, firsts: list[str], cities: list[str], n: int) -> list[dict]:
    out = []
    for _ in range(n):
        name = f"{rng.choice(firsts)} {rng.choice(LAST)}"
        age, city = rng.randint(19, 78), rng.choice(cities)
        text = rng.choice(SHAPES).format(name=name, age=age, city=city)
        out.append({"prompt": ASK.format(text=text), "answer": json.dumps({"name": name, "age": age, "city": city})})
    return out


def main() -> None:
    rng = random.Random(7)
    train = rows(rng, FIRST[:36], CITIES[:30], 160)
    checks = rows(rng, FIRST[36:], CITIES[30:], 30)
    (HERE / "extract_prompts.jsonl").write_text("".join(json.dumps({"prompt": r["prompt"]}) + "\n" for r in train))
    (HERE / "extract_checks.jsonl").write_text("".join(json.dumps(r) + "\n" for r in checks))


if __name__ == "__main__":
    main()
