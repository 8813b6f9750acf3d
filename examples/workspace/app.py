"""Prints the area of a few shapes; the UI it should grow into is sketched in mockup.png."""

from geometry.shapes import Circle, Rectangle, total_area


def describe(shape):
    return f"{type(shape).__name__} with area {shape.area():.2f}"


def main():
    shapes = [Circle(1.0), Rectangle(2.0, 3.0)]
    for shape in shapes:
        print(describe(shape))
    print("total", round(total_area(shapes), 2))


if __name__ == "__main__":
    main()
